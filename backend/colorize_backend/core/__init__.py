"""The core: the model contract, colour math, the pipeline and the engine. It imports
nothing of the daemon, the tools or training."""
