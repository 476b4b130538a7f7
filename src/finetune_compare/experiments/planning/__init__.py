"""What a command will cost before it runs, and how many pairs it needs: the pairs plan from a pilot, the cost
plan (a few timed steps, the runs scheduled on the resources) and its text."""
