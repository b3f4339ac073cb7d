// A refetchable Customer fragment (Relay's useRefetchableFragment).
import { graphql } from "relay-runtime";

export const customerProfileFragment = graphql`
  fragment CustomerProfile_customer on Customer
  @refetchable(queryName: "CustomerProfileRefetchQuery") {
    id
    databaseId
    name
    email
    tier
    region
  }
`;
