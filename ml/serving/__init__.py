"""Load a trained or registered model and score raw feature rows."""
