"""Results from Fuse: its callbacks and status reads, read in any encoding, stored, polled for when
they never came, and announced."""
