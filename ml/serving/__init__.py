"""ml.serving"""
