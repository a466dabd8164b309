"""The mysql dialect plugin for wirecache."""
