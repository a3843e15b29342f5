"""The domain: jobs, images, models and the ports the outer layers implement. Pure Python only."""
