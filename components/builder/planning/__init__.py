"""Planning: what one environment installs, as data (the install plan), and its tag."""
