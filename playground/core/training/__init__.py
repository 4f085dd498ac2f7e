"""The Training tab's live toys: a diffusion model on 2-D points (`toy_diffusion`, its own hand-written DDPM/DDIM loop,
a lesson in itself) and a character-level GPT (`toy_gpt`). The embedded models' training scripts are `playground.train`."""
