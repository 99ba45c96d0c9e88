"""Pruning: masks (torch.nn.utils.prune), channel removal (Torch-Pruning), schedules, pruners."""
