"""Planning and dispatch: the pure planner, the policy (user wishes) and the controller."""
