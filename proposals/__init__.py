"""Proposal sources: sliding windows, Selective Search, the RPN, and the proposal cache."""
