"""Train the shipped demo model from scratch: autoencoder, then UNet with a joint text encoder.

    python -m tools.demo_model.train

runs every stage with fixed seeds and writes the model to
``resources/models/checkpoints/latentloom-shapes`` (where the app looks for it by name). Each
stage is a module of this package, readable on its own:

1. ``data``: a fixed set of captioned scenes (drawn by ``tools.demo_model.scenes``) as the
   stages read them: tensors, held-back scenes, object masks and loss weights, token ids;
2. ``autoencoder``: a KL-regularised autoencoder (LDM paper, section 3.1: f = 4, KL weight
   1e-6), then its decoder fine-tuned alone with object pixels weighted up (the encoder, hence
   the latent space, stays fixed);
3. ``shape_codes``: every scene encoded once, each object's shape code written into the
   latent's least-used direction over its box (+ for a circle, - for a square) and the decoder
   fine-tuned to draw the shape the code says; then the latent scaling factor is set to 1 / std
   of the latents (LDM paper, appendix G). Without the code a circle and a square lie so close
   in latent space that the UNet drew the same shape for both words;
4. ``unet`` and ``unet_phases``: the UNet and the CLIP text encoder trained jointly on the
   cached latents with ε-prediction (LDM paper, eq. 2) and Stable Diffusion's scaled-linear
   schedule, 10 % of captions dropped for classifier-free guidance, in three phases: the main
   phase (2,800 steps, the first 2,200 with half of every batch from t >= 900 and an x0 weight
   of at least 1, where the prompt's place is learned; the text encoder anchored to its initial
   output throughout), the polish (400 steps, a fresh learning-rate cycle, outline cells weighed
   3 times) and the refining phase (400 steps on timesteps below 400). bf16 autocast where the
   CPU computes bfloat16 natively, float32 elsewhere (``--precision``);
5. ``export``: a float16 diffusers folder with its latent→RGB preview factors, shape codes and
   loss log;
6. ``tools.demo_model.evaluate``: held-out prompts through the default workflow, and the sample
   grid.

``config`` holds every number (``TrainConfig``; its defaults are the shipped recipe),
``options`` the command line, ``command`` the order of the stages, and ``experimental`` the code
of the switches that were tried and not shipped. What each setting gave when it was varied is in
``tools/demo_model/EXPERIMENTS.md``; the shipped model's card is ``MODEL_CARD.md`` beside its
weights.

Checkpoints of the exported folder are written to the work directory every few hundred steps,
so a run that has to be cut short still leaves a usable model behind.
"""

from tools.demo_model.train.command import main
from tools.demo_model.train.config import TrainConfig

__all__ = ["TrainConfig", "main"]
