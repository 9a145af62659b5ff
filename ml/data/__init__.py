"""ml.data"""
