"""ml.registry"""
