"""A package vendored inside the codeset (requirements.txt names it as ./vendor/greet)."""


def hello():
    return "hello from vendor/greet"
