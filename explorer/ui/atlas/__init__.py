"""The semantic atlas tab."""
