// Any object by its global id, and several at once.
import { graphql } from "relay-runtime";

export const nodeLookupQuery = graphql`
  query NodeLookupQuery($id: ID!, $ids: [ID!]!) {
    node(id: $id) {
      __typename
      id
      ...CustomerProfile_customer @alias
      ...OrderSummary_order @alias
    }
    nodes(ids: $ids) {
      __typename
      id
    }
  }
`;
