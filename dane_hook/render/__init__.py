"""Stage 8, output formats as data: one enum per kind of result, one renderer per format."""
