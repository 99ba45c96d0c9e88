"""Data: CIFAR-10 and its sources, the splits, the dataset file every job reads."""
