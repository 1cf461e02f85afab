"""The registry: zones and sensors of a deployment (fleet files), loaded into the database."""
