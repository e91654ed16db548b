"""Realistic wrong answers to the auto-checked exercises, one module per chapter (issue 21).

Each module holds `WRONG = {exercise id: [(wrong function, words of the hint it must get)]}`.
They are written the way a learner would get it wrong, independently of the mistakes that
`minivlm/exercises/chNN.py` detects, so a test that passes shows the checker recognises the
mistake from what the code computes, not from how it is written.
"""
