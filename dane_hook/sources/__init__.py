"""Where candidate chains come from: plain files, certbot lineages, acme.sh folders."""
