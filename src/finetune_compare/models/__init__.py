"""Models: checkpoint resolution, the BaseModel interface, the HF implementation, methods."""
