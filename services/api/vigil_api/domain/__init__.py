"""The API's logic that is not a route: archives, dataset and camera sources, snapshots, stages."""
