"""The worker: joins the controller, takes jobs over rpyc and filters images in processes."""
