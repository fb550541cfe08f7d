"""What runs inside a container: the builder step and the runtime (trainer) step."""
