"""ml.training"""
