/*
 * LD_PRELOAD shim for Debian 12's libxml2 2.9.14+dfsg-1.3~deb12u4 .. u6 (issue 13).
 *
 * Those builds never call the SAX1 startElement/endElement callbacks of a handler
 * marked XML_SAX2_MAGIC that has no startElementNs - exactly SIPE's parser
 * (sipe-xml.c) - so SIPE parses every XML body to NULL and silently ignores
 * provisioning and every XCCOS reply. This wrapper around xmlSAXUserParseMemory hands
 * libxml2 a copy of such a handler re-marked as SAX1 (initialized = 1), which restores
 * the callbacks. Handlers that use SAX2 (startElementNs set) pass through unchanged.
 *
 * Build: gcc -shared -fPIC -o xml_sax1_shim.so xml_sax1_shim.c \
 *            $(pkg-config --cflags libxml-2.0) -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libxml/parser.h>
#include <libxml/SAX2.h>

typedef int (*parse_fn)(xmlSAXHandlerPtr, void *, const char *, int);

int xmlSAXUserParseMemory(xmlSAXHandlerPtr sax, void *user_data, const char *buffer,
                          int size)
{
	static parse_fn real = NULL;
	if (real == NULL)
		real = (parse_fn)dlsym(RTLD_NEXT, "xmlSAXUserParseMemory");
	if (real == NULL)
		return -1;
	if (sax != NULL && sax->initialized == XML_SAX2_MAGIC &&
	    sax->startElementNs == NULL && sax->startElement != NULL) {
		xmlSAXHandler copy = *sax;
		copy.initialized = 1;
		return real(&copy, user_data, buffer, size);
	}
	return real(sax, user_data, buffer, size);
}
