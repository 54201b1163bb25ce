"""The supply chain: organizations, their operational domains, supplier trust and manifests."""
