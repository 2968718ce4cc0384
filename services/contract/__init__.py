"""What more than one process of the cluster must agree on, beside the protos.

Pure data and tiny pure functions: the feature list and its version, model names, panel and level
fields, trade styles, sectors, signals, row columns and page limits, accounting reasons. It imports
no service package, so every service may import it.
"""
