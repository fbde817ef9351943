"""placeholder"""
def register(jobs):
    pass
