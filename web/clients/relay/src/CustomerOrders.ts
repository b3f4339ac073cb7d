// One customer's orders in both directions; refetching the page goes through node(id:).
import { graphql } from "relay-runtime";

export const customerOrdersFragment = graphql`
  fragment CustomerOrders_customer on Customer
  @refetchable(queryName: "CustomerOrdersPaginationQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 10 }
    after: { type: "String" }
    last: { type: "Int" }
    before: { type: "String" }
  ) {
    id
    name
    orders(first: $first, after: $after, last: $last, before: $before)
      @connection(key: "CustomerOrders_orders") {
      edges {
        node {
          id
          placedAt
          status
        }
      }
    }
  }
`;

export const customerOrdersQuery = graphql`
  query CustomerOrdersQuery($id: ID!) {
    customer(id: $id) {
      ...CustomerOrders_customer
    }
  }
`;
