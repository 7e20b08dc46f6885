"""Plum Fuse: the only client that speaks HTTP to it, the pure forms it takes, and the signed
callback URLs it posts results to."""
