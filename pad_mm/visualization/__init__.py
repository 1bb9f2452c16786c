"""Drawing dilation maps, receptive fields and activations."""
