"""Models and training: MobileNetV2's facts, the network, the engine, checkpoints, resumption."""
