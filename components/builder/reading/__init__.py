"""Reading the codeset: untrusted input, read and checked before anything is planned."""
