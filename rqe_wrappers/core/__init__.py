"""What every part leans on: Policy interface, scripted registry, seeding, snapshots, the trainer's view."""
