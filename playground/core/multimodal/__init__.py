"""Pictures and words together: CLIP's shared embedding space (and, next, DALL-E 2's prior and decoder). No gradio."""
