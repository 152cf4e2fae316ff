"""The exit codes every command uses, so scripts can tell the failures apart."""

#: Done: the events were shown, counted or recorded (or the user stopped a live command).
EXIT_OK = 0
#: Redis could not be read or written, stayed away too long, or the events did not arrive.
EXIT_REDIS = 1
#: The command line was wrong (click's own code for usage errors); the message says what.
EXIT_USAGE = 2
