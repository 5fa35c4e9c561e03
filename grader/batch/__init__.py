"""Grade a whole roster: ``grade batch ROSTER`` and ``grade merge DIR... --out OUT``.

    roster.py       the CSV roster, validated before anything runs; --shard i/N
    resolve.py      git ls-remote: the skip rule of a re-run
    worker.py       one submission graded in its own process (fingerprint + pipeline.grade)
    runner.py       bounded parallel workers, time limit, records written at once, Ctrl-C
    fingerprint.py  hashed line shingles of src/api: near-copies between students
    handout.py      the handout's fingerprint (OUT/handout.json): the near-copy baseline
    outputs.py      gradebook.csv, summary.html, exports/ from the records (grader.records)
    summary.py      the class summary page
    progress.py     the rich progress display
"""
