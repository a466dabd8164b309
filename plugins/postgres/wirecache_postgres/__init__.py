"""The postgres dialect plugin for wirecache."""
