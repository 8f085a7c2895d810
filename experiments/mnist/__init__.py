"""Sequential MNIST: train at 14x14, test at 16x16, 19x19 and 24x24 (Goyal et al. 2019, section 4.1)."""
