"""Diffusion, in one package. No gradio. Where to look:

| file              | what it holds                                                                                   |
|-------------------|-------------------------------------------------------------------------------------------------|
| `schedule.py`     | noise schedules (β_t, ᾱ_t, SNR), the forward process x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε, the samplers    |
| `loop.py`         | THE reverse loop, unrolled and numbered in the papers' notation; records, rewind snapshots, branch |
| `conditioning.py` | what the UNet is told: nothing, a class or a text; the "nothing" that guidance needs              |
| `pictures.py`     | tensors to pictures: latent previews, decoding, grids, image-to-image's input                    |
| `run.py`          | `DiffusionRequest` (validated) and `run(model, request)`: the one setup every caller uses          |

Every caller (the Diffusion and Text-to-image tabs, `/denoise`, `/cross_attention`, the evaluation, the workshop check)
builds a `DiffusionRequest` and iterates `run(model, request)`; nothing else sets up a scheduler, a generator or x_T.
The 2-D toy trainer of the Training tab keeps its own hand-written loop: it is a lesson in itself.
"""
