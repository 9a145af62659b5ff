"""ml.evaluation"""
