"""The Docker Compose backend: the grading stack as containers on one private network."""
