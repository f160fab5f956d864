/*
 * A module built for ABI 1: it exports the old descriptor, whose first
 * field is the ABI number.  The loader must refuse it naming both versions.
 */
struct abi1_descriptor {
	unsigned    abi;
	const char *name;
	unsigned    methods;
	void       *options;
	void       *hooks[6];
};

__attribute__((visibility("default"))) const struct abi1_descriptor httpd_module = {
	.abi = 1,
	.name = "abi1",
	.methods = 1,
};
