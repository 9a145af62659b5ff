"""ml.models"""
