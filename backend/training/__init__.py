"""A run's training: its settings, the trainer loop, the state a checkpoint holds."""
