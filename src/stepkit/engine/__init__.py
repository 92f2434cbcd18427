"""The pure core that runs a plan: commands, run state, resume positions, two thin drivers."""
