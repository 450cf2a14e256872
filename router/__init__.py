"""The modelplane router: one OpenAI-compatible endpoint for self-hosted and external models."""
