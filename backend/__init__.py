"""makemore live: watch the makemore MLP learn names, and steer it while it learns."""
