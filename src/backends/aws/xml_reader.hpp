#pragma once

// A small, strict XML reader for the documents EC2 answers with. Private to kasm::aws.
//
// It builds a tree of elements (local names, namespace prefixes dropped; attributes checked for
// form and dropped; character data and CDATA joined per element). It is written for input from the
// network: no DTD is accepted (so no entity expansion, internal or external), only the five
// predefined entities and character references are decoded, depth and element count are bounded,
// and every malformation is an error naming the byte offset, never a crash.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::aws::detail {

struct XmlElement {
  std::string name;  // Local name: "item" for both <item> and <ec2:item>.
  std::string text;  // Character data directly inside this element, entities decoded.
  std::vector<XmlElement> children;

  // The first child named `name`, or null.
  const XmlElement* child(std::string_view child_name) const;
  // The text of the first child named `name`; empty when there is none.
  std::string childText(std::string_view child_name) const;
  // Every child named `name`, in document order.
  std::vector<const XmlElement*> childrenNamed(std::string_view child_name) const;
  // The first element named `name` in a depth-first walk below this one (not this one), or null.
  const XmlElement* findDescendant(std::string_view descendant_name) const;
};

struct XmlLimits {
  std::size_t max_bytes = 16u << 20;
  std::size_t max_depth = 64;
  std::size_t max_elements = 1u << 20;
};

// The document's root element. InvalidArgument ("xml: at byte N: ...") for anything malformed,
// a DOCTYPE, an unknown entity, or a document past the limits.
Result<XmlElement> parseXml(std::string_view document, const XmlLimits& limits = {});

}  // namespace kasm::aws::detail
