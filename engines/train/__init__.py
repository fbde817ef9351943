"""Training: label assignment, losses, the trainer (DDP) and evaluation."""
