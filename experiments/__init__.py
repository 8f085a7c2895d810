"""Experiments built on rim_core: sequential MNIST and MiniGrid agents."""
