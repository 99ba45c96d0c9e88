"""Planning: the experiment matrix, config, registries, code hashes and job settings. Torch-free."""
